#!/usr/bin/python3
"""Mutation fuzzer of lmt's input files: dataset files, model files and checkpoints.

Not part of CI (it takes minutes). It converts real Fashion-MNIST, trains a small lmt-mnist with
a checkpoint, then for each target makes N mutated copies (bit flips, random bytes, zeroed runs,
truncations, duplicated blocks; half of them aimed at the first and last 4 KiB, where the
metadata lives) and runs the command that reads the file:

  dataset     lmt eval --model-file MODEL --data MUTATED.h5
  model       lmt eval --model-file MUTATED.pt --data test.h5
  checkpoint  lmt train --resume MUTATED_DIR ... (the 20 steps after the step-20 checkpoint)

Each outcome is one of: crash (killed by a signal), hang (still running after --timeout s),
named error (non-zero exit whose stderr names the mutated file or checkpoint), unnamed error
(non-zero exit that does not), accepted, same (exit 0 with the intact file's figures: the
mutation hit bytes nothing reads) and accepted, different (exit 0 with other figures: damage that
went undetected). Prints a table and writes every crash/hang reproducer under --keep.

  tests/fuzz/mutate.py --lmt build/lmt [--n 300] [--timeout 30] [--seed 1] [--work DIR]
Exit code: 0 when there was no crash and no hang, 1 otherwise.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

KINDS = ("flip", "byte", "zero16", "truncate", "duplicate")


def mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    n = len(buf)
    if rng.random() < 0.5:  # aim at the metadata: HDF5 superblock/headers, zip directory
        span = min(4096, n)
        pos = rng.randrange(span) if rng.random() < 0.5 else n - 1 - rng.randrange(span)
    else:
        pos = rng.randrange(n)
    kind = rng.choice(KINDS)
    if kind == "flip":
        buf[pos] ^= 1 << rng.randrange(8)
    elif kind == "byte":
        buf[pos] = (buf[pos] + 1 + rng.randrange(255)) % 256
    elif kind == "zero16":
        buf[pos:pos + 16] = bytes(len(buf[pos:pos + 16]))
    elif kind == "truncate":
        del buf[pos:]
    elif kind == "duplicate":
        buf[pos:pos] = buf[pos:pos + 64]
    return bytes(buf)


def write_mutated(source, victim, rng):
    with open(source, "rb") as f:
        blob = f.read()
    with open(victim, "wb") as f:
        f.write(mutate(blob, rng) if blob else b"x")


def run(cmd, timeout, env):
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "hang", b"", b"", time.time() - start
    return proc.returncode, out, err, time.time() - start


def result_fields(out: bytes):
    """The figures of the command's JSON result line (paths and timings left out)."""
    fields = {}
    for line in out.decode("utf-8", "replace").splitlines():
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            for k in ("accuracy", "loss", "count", "train_accuracy", "test_accuracy",
                      "lipschitz_bound", "steps"):
                if k in obj:
                    fields[k] = obj[k]
    return fields


def classify(code, out: bytes, err: bytes, names, baseline):
    if code == "hang":
        return "hang"
    if code < 0 or code >= 128:  # killed by a signal (directly, or reported by a shell)
        return "crash"
    if code == 0:
        # Accepted: did the mutation change nothing that is read (free space, padding, an unused
        # zip field), or did the command compute something else from damaged bytes?
        return "accepted, same" if result_fields(out) == baseline else "accepted, different"
    text = err.decode("utf-8", "replace")
    return "named error" if any(n in text for n in names) else "unnamed error"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lmt", required=True)
    ap.add_argument("--n", type=int, default=300, help="mutations per target")
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", default="/tmp/lmt-fuzz")
    ap.add_argument("--keep", default=None,
                    help="where crash/hang reproducers go (default: WORK-reproducers)")
    ap.add_argument("--targets", default="dataset,model,checkpoint")
    ap.add_argument("--fmnist", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--show", action="store_true", help="print each case's last stderr line")
    a = ap.parse_args()
    lmt = os.path.abspath(a.lmt)
    work = os.path.abspath(a.work)
    keep = os.path.abspath(a.keep or work + "-reproducers")
    marker = os.path.join(work, ".lmt-fuzz-work")
    if os.path.isdir(work) and os.listdir(work) and not os.path.exists(marker):
        sys.exit("fuzz: --work %s is not empty and was not made by this script: not removing it"
                 % work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    open(marker, "w").close()
    os.makedirs(keep, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")

    def must(cmd):
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        if r.returncode != 0:
            sys.exit("fuzz: set-up failed: %s\n%s" % (" ".join(cmd), r.stderr.decode()))

    data = os.path.join(work, "fmnist")
    run_dir = os.path.join(work, "seed-run")
    print("fuzz: converting Fashion-MNIST and training the seed model ...", flush=True)
    must([lmt, "convert", "fashion-mnist", "--src", a.fmnist, "--out", data])
    must([lmt, "train", "--data", data, "--out", run_dir, "--max-steps", "40", "--batch-size",
          "50", "--checkpoint-every", "20", "--threads", "1", "--seed", "1"])
    model = os.path.join(run_dir, "model.pt")
    test = os.path.join(data, "test.h5")
    ckpts = sorted(os.listdir(os.path.join(run_dir, "checkpoints")))
    checkpoint = os.path.join(run_dir, "checkpoints", ckpts[0])  # step 20 of 40
    ckpt_files = sorted(f for f in os.listdir(checkpoint)
                        if os.path.isfile(os.path.join(checkpoint, f)))

    # The intact originals, to run each target's command once unmutated for its baseline result.
    pristine = {"dataset": data, "model": run_dir, "checkpoint": work}
    baselines = {}
    rng = random.Random(a.seed)
    targets = a.targets.split(",")
    results = {t: {} for t in targets}
    for target in targets:
        started = time.time()
        for i in range(a.n):
            case = os.path.join(work, "case")
            shutil.rmtree(case, ignore_errors=True)
            os.makedirs(case)
            if target in ("dataset", "model"):
                source = test if target == "dataset" else model
                victim = os.path.join(case, os.path.basename(source))
                write_mutated(source, victim, rng)
                files = {"dataset": (model, victim), "model": (victim, test)}[target]
                cmd = [lmt, "eval", "--model-file", files[0], "--data", files[1], "--threads", "1"]
                names = [victim, os.path.basename(source)]
            else:
                out = os.path.join(case, "run")
                ck = os.path.join(case, "ckpt")
                shutil.copytree(checkpoint, ck)
                name = rng.choice(ckpt_files)
                victim = os.path.join(ck, name)
                write_mutated(victim, victim, rng)
                shutil.copy(os.path.join(run_dir, "config.ini"), os.path.join(case, "config.ini"))
                cmd = [lmt, "train", "--data", data, "--out", out, "--max-steps", "40",
                       "--batch-size", "50", "--checkpoint-every", "20", "--threads", "1",
                       "--seed", "1", "--resume", ck]
                names = [ck, victim, name]
            if target not in baselines:  # the same command on the intact file
                intact = [arg.replace(case, pristine[target]) for arg in cmd]
                if target == "checkpoint":
                    intact[intact.index("--resume") + 1] = checkpoint
                    intact[intact.index("--out") + 1] = os.path.join(work, "baseline-run")
                code, out, err, _ = run(intact, a.timeout, env)
                if code != 0:
                    sys.exit("fuzz: the intact %s fails: %s\n%s" % (target, " ".join(intact),
                                                                    err.decode()))
                baselines[target] = result_fields(out)
            code, out, err, wall = run(cmd, a.timeout, env)
            outcome = classify(code, out, err, names, baselines[target])
            results[target][outcome] = results[target].get(outcome, 0) + 1
            if a.show:
                last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
                print("  %s %d: %s: %s" % (target, i, outcome, last[0][:200]))
            if outcome in ("crash", "hang"):
                dst = os.path.join(keep, "%s-%03d-%s" % (target, i, outcome.replace(" ", "_")))
                shutil.copytree(case, dst)
                with open(dst + ".txt", "w") as f:
                    f.write("command: %s\nexit: %s\nstderr:\n%s" %
                            (" ".join(cmd), code, err.decode("utf-8", "replace")[-4000:]))
            if (i + 1) % 25 == 0 or i + 1 == a.n:
                print("fuzz: %-10s %4d/%d  %s  (%.0f s)" %
                      (target, i + 1, a.n, dict(sorted(results[target].items())),
                       time.time() - started), flush=True)

    cols = ["crash", "hang", "named error", "unnamed error", "accepted, same",
            "accepted, different"]
    print()
    print("| target | mutations | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    bad = 0
    for t in targets:
        r = results[t]
        bad += r.get("crash", 0) + r.get("hang", 0)
        print("| %s | %d | " % (t, a.n) + " | ".join(str(r.get(c, 0)) for c in cols) + " |")
    if bad:
        print("\nfuzz: %d crash/hang reproducers under %s" % (bad, keep))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
