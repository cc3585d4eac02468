"""Kernel test fixtures. The g4f_server.testing pytest plugin adds provider_context,
start_gateway and --live."""
