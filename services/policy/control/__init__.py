"""The control plane: the policy document, whether a signed update or operator action may take
effect, and which version this replica applies."""
