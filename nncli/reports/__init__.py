"""``nncli report``'s room: the numbers of a classifier's evaluation that no other command
computes (ROC and precision-recall curves, their areas, the reliability diagram and the expected
calibration error: ``curves.py``), permutation importance of input column groups
(``importance.py``), and the one self-contained HTML page that shows them (``page.py``: inline
styles and PNG data URIs, nothing fetched when it is opened). numpy and the standard library
only: the pictures come drawn from the plots room, the data from the commands room.
"""
