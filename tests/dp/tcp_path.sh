# Network path: the 2-rank run over TCP only (pml ob1 with --mca btl tcp,self: UCX, which would
# ignore the btl list, and shared memory are both excluded) ends bitwise identical to the same
# run over shared memory (btl vader,self), and within 1e-5 of one rank.
source "$(dirname "$0")/lib.sh"
ARGS=(train --data "$FM" --model lmt-mnist --optimizer sgd --lr 0.01 --batch-size 64 --max-steps 20
      --seed 5 --threads 1
      --log-every 1000)
"$LMT_BIN" "${ARGS[@]}" --out "$TMP/one" >"$TMP/one.log" 2>&1
expect_code 0 $? "1 rank (see $TMP/one.log)"
mpi 2 --mca pml ob1 --mca btl vader,self -- "${ARGS[@]}" --out "$TMP/shm" >"$TMP/shm.log" 2>&1
expect_code 0 $? "2 ranks over shared memory (see $TMP/shm.log)"
mpi 2 --mca pml ob1 --mca btl tcp,self -- "${ARGS[@]}" --out "$TMP/tcp" >"$TMP/tcp.log" 2>&1
expect_code 0 $? "2 ranks over tcp (see $TMP/tcp.log)"
compare "tcp vs shared memory" "$TMP/tcp/model.pt" "$TMP/shm/model.pt" --bitwise
compare "tcp vs 1 rank" "$TMP/tcp/model.pt" "$TMP/one/model.pt" --rtol 1e-5
echo "PASS"
