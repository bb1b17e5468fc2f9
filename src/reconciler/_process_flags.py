"""Set by ``reconcile``'s ``main()`` when it runs as the process itself (not called in-process):
what only a whole process of ours may change about its imports and its objects' lifetime."""

AS_CLI_PROCESS = False
_KEPT: list[object] = []


def keep(*objects: object) -> None:
    """In reconcile's own process, which ends with ``os._exit`` (no teardown), hold OBJECTS to the
    end: a command's manifest, engine and plan would otherwise be freed one object at a time as it
    returns (0.17 s after a plan of 100,000 connectors). A program calling the library keeps its own."""
    if AS_CLI_PROCESS:
        _KEPT.extend(objects)
