from gridmap.cli import app

app()
