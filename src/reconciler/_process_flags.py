"""Set by ``reconcile``'s ``main()`` when it runs as the process itself (not called in-process):
what only a whole process of ours may change about its imports."""

AS_CLI_PROCESS = False
