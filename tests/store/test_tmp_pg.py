def test_x(db_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from lockgate.store import migrate, schema
    from lockgate.store.db import create_db_engine, check_writable_sqlite
    if db_url.startswith("sqlite"):
        check_writable_sqlite(db_url)
    eng = create_db_engine(db_url)
    print(migrate.upgrade(eng))
    with eng.connect() as conn:
        mc = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        print(compare_metadata(mc, schema.metadata))
    eng.dispose()
