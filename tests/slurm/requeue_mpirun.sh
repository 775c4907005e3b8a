# USR1 to the batch shell of slurm/train-mpirun.sbatch (scancel --batch, as --signal=B:USR1
# does), which forwards it to mpirun and so to every rank: checkpoint, requeue, resume, the
# uninterrupted run's weights.
JOB_SCRIPT=train-mpirun.sbatch
SBATCH_EXTRA=()
SIGNAL_MODE=batch
source "$(dirname "$0")/requeue.sh"
