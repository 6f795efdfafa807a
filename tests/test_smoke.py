from tests.conftest import login


async def test_login_page_renders(client):
    resp = await client.get("/login")
    assert resp.status == 200
    assert "csrf_token" in await resp.text()


async def test_gp_logs_in_and_lands_home(client, make_staff):
    gp = await make_staff()
    resp = await login(client, gp.email)
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == "/home"
    home = await client.get("/home")
    assert home.status == 200
    assert 'data-role="gp"' in await home.text()
