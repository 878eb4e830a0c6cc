"""Several daemons on one PostgreSQL: node registration (nodes.py), singleton jobs by advisory lock
(singletons.py, advisory.py) and wake-ups by LISTEN/NOTIFY (wakeup.py). The psycopg-based modules are
imported only when a PostgreSQL store is configured."""
