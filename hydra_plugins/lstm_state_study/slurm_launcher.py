"""The project's Slurm launcher (``hydra/launcher=slurm``): hydra-submitit-launcher's, with ``pipeline.cluster``'s
checks and reports. Hydra takes launchers only from its ``hydra_plugins`` package, hence this module; it defines the
launcher only where the ``[cluster]`` extra is installed, so Hydra's plugin scan stays quiet everywhere else."""

from collections.abc import Sequence

from hydra.core.utils import JobReturn

from pipeline import cluster

try:
    from hydra_plugins.hydra_submitit_launcher import submitit_launcher
except ImportError:  # pip install -e ".[cluster]" brings it
    submitit_launcher = None

if submitit_launcher is not None:

    class SlurmLauncher(submitit_launcher.SlurmLauncher):
        """Checks that Slurm answers and has the partition before submitting; reports every unfinished job after."""

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
            return cluster.launch(self, job_overrides, initial_job_idx)
