import httpx

from tests.factories import book_payload


async def test_create_then_get_round_trips(client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/books", json=book_payload(title="Dune"))
    assert created.status_code == 201
    fetched = await client.get(created.headers["location"])
    assert fetched.status_code == 200
    assert fetched.json() == created.json()
