"""The outbox: outbound calls written with the state change, delivered later with retries."""
