"""Settings package: ``base`` holds everything, the others adjust it.

``dev`` is what ``make run`` uses, ``test`` what pytest uses, ``production``
a real node behind nginx. All of them read the operator's file through
:mod:`portal.config`.
"""
