"""The operators' commands, one per module; `creditwindow.cli` mounts them."""
