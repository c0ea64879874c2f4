"""The project's benchmarks: ``python -m benchmarks`` runs them all (see :mod:`benchmarks.run_all`)."""
