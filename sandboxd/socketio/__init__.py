"""Socket.IO (protocol 5) over Engine.IO (protocol 4): the seed's clients on sandboxd.

- :mod:`.engineio` and :mod:`.packets`: the wire formats, I/O-free.
"""
