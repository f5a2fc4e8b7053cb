"""Server: talking to OpenAI and OpenAI-compatible servers.

The client and its error mapping, the provider table (the one list of server kinds), advice for
rejected requests, the `vnarrate models` check, prices, and the response cache.
"""
