"""The server: REST API (`api/`), web UI (`web/`), sessions and access control, `/metrics`.

`app.create_app` builds the ASGI application for a project; `serve.serve` runs it with
uvicorn (and the scheduler, for `lockgate up`). FastAPI, Starlette and uvicorn are imported
only here, never by `import lockgate`."""
