"""The host layer: the one package that touches the operating system.

Apps never call ``subprocess`` or write under /etc themselves; they build
:class:`~portal.host.commands.Command` values with the typed builders in
:mod:`portal.host.builders`, run them through a :class:`~portal.host.runner.Runner`
and write files through :class:`~portal.host.files.FileStore`. Which runner
and which file root a process gets depends on the host mode
(:func:`portal.host.node.current_host`): the real system, node 1 of the lab
(a network namespace), or dry-run (record, change nothing).

Every command run and every file written while a job runs is reported to
:mod:`portal.host.log`, which the job machinery appends to the job's log.
"""
