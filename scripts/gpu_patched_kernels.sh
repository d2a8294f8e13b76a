# Sourced by gpu_session27a.sh, gpu_session27b.sh and check_patches_emulated.sh: the Gluon backward's file in
# five versions, saved as /tmp/k_{before,p1,p2,p3,p2full}.py (scripts/patches/, see
# benchmarks/results/2026-12-08-s26/): before (session 25's kernel: p1 reversed), p1 (main's since session
# 27), then p2 and p3 applied in turn; the tree's copy is left at p3. Only this call's copy of the tree changes.
# The patches go in through apply_patch.py: the device's image need not have `patch`.
F=MedSegMamba/medsegmamba/ops/triton/scan_gluon.py
cp "$F" /tmp/k_p1.py
python3 scripts/apply_patch.py -R scripts/patches/bwd_skip_unread_steps.patch || { echo "p1 did not reverse"; exit 1; }
cp "$F" /tmp/k_before.py
cp /tmp/k_p1.py "$F"
for p in p2:bwd_lane_sums p3:bwd_state_sums; do
  python3 scripts/apply_patch.py "scripts/patches/${p#*:}.patch" || { echo "${p#*:}.patch did not apply"; exit 1; }
  cp "$F" "/tmp/k_${p%%:*}.py"
done
# p2 with a group of channels a lane (no shuffles for dB and dC; three programs a multiprocessor)
sed 's|KEEP: gl.constexpr = TPW_D // 2 if TPW_D > 1 else 1|KEEP: gl.constexpr = TPW_D|' /tmp/k_p2.py > /tmp/k_p2full.py
if cmp -s /tmp/k_p2.py /tmp/k_p2full.py; then echo "p2full: the KEEP line was not found"; exit 1; fi
