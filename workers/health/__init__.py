"""The health observer: one command per server and cycle, the memory of each instance between
observations, and the server's reachability."""
