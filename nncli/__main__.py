from nncli.cli import app

app()
