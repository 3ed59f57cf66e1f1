"""The database: the data layer (``database``, with its drivers ``postgres`` and ``sqlite``,
the statement compiler ``statements`` and the errors ``exceptions``), the process's pool and one
connection per request (``connections``), the shared ``metadata`` and column ``types``, every
feature's tables (``registry``), and Alembic (``migrate``, ``migrations/``, on SQLAlchemy's
engine from ``engine``).

Import from the submodules: this package re-exports nothing, so importing ``bookshelf.db.types``
from a feature's models does not pull in the feature registry (which imports those models).
"""
