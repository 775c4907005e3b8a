# USR1 to the ranks of slurm/train-multinode.sbatch (srun --mpi=pmix direct launch, here on
# one node with 2 tasks): checkpoint, requeue, resume, the uninterrupted run's weights.
JOB_SCRIPT=train-multinode.sbatch
SBATCH_EXTRA=(--nodes=1 --ntasks-per-node=2 --cpus-per-task=1)
SIGNAL_MODE=steps
source "$(dirname "$0")/requeue.sh"
