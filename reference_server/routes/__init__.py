"""HTTP routes of the gateway, one module per area; ``app.create_app`` includes their routers."""
