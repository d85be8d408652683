"""The Qt-free engine: everything that computes, reads or writes.

Nothing under this package may import Qt; the GUI is a thin layer over it.
"""
