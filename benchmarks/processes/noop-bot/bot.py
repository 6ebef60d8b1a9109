"""A bot whose items need no page work."""


def process(ctx):
    ctx.output["seen"] = ctx.item["ref"]
