"""What lands on a server: its files rendered from an instance's spec, the command lines of each
step, and the checks every value passes first."""
