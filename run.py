"""Development entry point: ``python run.py`` serves Bookshelf on http://127.0.0.1:8000 with
auto-reload, on the embedded SQLite database unless BOOKSHELF_DATABASE_URL says otherwise.

Production runs ``bookshelf serve`` (see the README)."""

from bookshelf.cli import app

if __name__ == "__main__":
    app(["serve", "--reload"])
