"""Development tooling: the local platform, the fleet as processes, the demo, the benchmark and its
relay, the fault suite and the offline experiments.

Not part of the runtime (the services and the operators' CLI never import it); its commands join
the operators' CLI through the `creditwindow.commands` entry point (`devtools.cli.register`).
"""
