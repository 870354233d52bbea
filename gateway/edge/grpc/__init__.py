"""The gRPC adapter: the server, the servicer, message conversion, request decoding limits,
the access guard, the interceptor that frames every call, the one table from domain errors to
gRPC status, reflection and the container health probe."""
