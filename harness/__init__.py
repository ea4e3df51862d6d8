"""smlocal's host side: the CLI, data preparation, the local-mode driver and the contract suite."""
