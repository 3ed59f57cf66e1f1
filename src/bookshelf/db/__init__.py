"""The database: the database (``database``), one connection per request and units of work
(``connections``), the shared ``metadata`` and column ``types``, every feature's tables
(``registry``), and Alembic (``migrate``, ``migrations/``).

Import from the submodules: this package re-exports nothing, so importing ``bookshelf.db.types``
from a feature's models does not pull in the feature registry (which imports those models).
"""
