"""The deploy layer: one flow for every environment (see `flow`), whatever its engine."""
