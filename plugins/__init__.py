"""sandboxd's first-party plugins (installed as ``sandboxd_plugins``).

Each module is one plugin, registered in the ``sandboxd`` entry-point group like any
third-party plugin and enabled by name in ``[plugins] enabled``. Each is a class
instantiated with its ``[plugins.NAME]`` settings table.
"""
