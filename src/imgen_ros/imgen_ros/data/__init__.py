"""Dataset format: robomimic hdf5 with per-step action modes, datagen info, masks and generation metadata."""

from imgen_ros.data.episode import (
    ACTION_MODE_DEMO,
    ACTION_MODE_HUMAN,
    ACTION_MODE_ROBOT,
    ACTION_MODES,
    Episode,
    EpisodeRecorder,
)
from imgen_ros.data.reader import DatasetReader
from imgen_ros.data.validate import DatasetError, DatasetIssue, find_issues, validate_dataset
from imgen_ros.data.writer import DatasetWriter

__all__ = [
    "ACTION_MODES",
    "ACTION_MODE_DEMO",
    "ACTION_MODE_HUMAN",
    "ACTION_MODE_ROBOT",
    "DatasetError",
    "DatasetIssue",
    "DatasetReader",
    "DatasetWriter",
    "Episode",
    "EpisodeRecorder",
    "find_issues",
    "validate_dataset",
]
