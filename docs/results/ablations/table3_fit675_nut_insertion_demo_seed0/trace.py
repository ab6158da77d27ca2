"""Trace I-MG policy rollouts on nut_insertion partial: per episode success, max nut height over peg top,
closest nut-peg xy distance, final xy distance, reveal step."""
import sys, json
import numpy as np
from imgen_ros.policy.evaluate import RobomimicPolicy, seed_policy_sampling
from imgen_ros.sim import make_env
ckpt, n = sys.argv[1], int(sys.argv[2])
env = make_env("nut_insertion", noise="on", observability="partial")
policy = RobomimicPolicy.from_checkpoint(ckpt, task="nut_insertion")
rows = []
for i in range(n):
    seed = 1000000 + i
    seed_policy_sampling(seed)
    obs = env.reset(seed); policy.reset()
    zmax, dmin, success, reveal = -1.0, 9.0, False, None
    for t in range(env.horizon):
        obs, _, done, info = env.step(policy.act(obs))
        poses = env.object_poses()
        nut, peg = poses["nut"][:3, 3], poses["peg"][:3, 3]
        zmax = max(zmax, nut[2] - 0.06)
        d = float(np.linalg.norm(nut[:2] - peg[:2])); dmin = min(dmin, d)
        if reveal is None and obs["object"][-1] > 0.5: reveal = t
        success = success or bool(info.get("success"))
        if done or success: break
    rows.append({"seed": seed, "success": success, "steps": t + 1, "nut_above_peg_top_max_m": round(zmax, 3),
                 "xy_min_mm": round(dmin * 1000, 1), "xy_final_mm": round(d * 1000, 1), "reveal_step": reveal})
    print(json.dumps(rows[-1]), flush=True)
s = sum(r["success"] for r in rows)
fails = [r for r in rows if not r["success"]]
print(f"success {s}/{n}; failures lifting > 0.3 m above the peg top: {sum(r['nut_above_peg_top_max_m'] > 0.3 for r in fails)}/{len(fails)}")
