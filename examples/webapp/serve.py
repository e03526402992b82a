"""Serve the sample app with the standard library (App Service: startup command `python serve.py`)."""

import os
from wsgiref.simple_server import make_server

from app import app

if __name__ == "__main__":
    make_server("0.0.0.0", int(os.environ.get("PORT", "8000")), app).serve_forever()
