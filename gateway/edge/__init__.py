"""The gateway's edges: the gRPC server and servicer, error mapping, the Smartcar adapter,
logging, and the process's composition root. Everything here depends on the core."""
