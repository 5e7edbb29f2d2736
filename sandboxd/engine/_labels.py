"""Label keys that mark a container as one of this daemon's."""

#: Every container sandboxd creates carries it ("true").
LABEL_MANAGED = "org.sandboxd.managed"
#: The daemon instance (``docker.instance``) that created it.
LABEL_INSTANCE = "org.sandboxd.instance"
#: A never-started container the daemon reads an image's files from.
LABEL_PROBE = "org.sandboxd.probe"
