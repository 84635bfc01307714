"""Many swaps from one job file (``facedub batch``), on this machine or on a Ray cluster.

:mod:`~facedub.batch.jobs` reads and checks the job file, :mod:`~facedub.batch.runner` runs
each job's stages (the same stage functions and config dataclasses as ``facedub swap``) with
a resumable JSON state per job, and :mod:`~facedub.batch.cluster` hands independent calls to
an executor: in turn on this machine, or as Ray tasks (the optional ``facedub[cluster]``
extra, imported only when ``--cluster`` is given).
"""
