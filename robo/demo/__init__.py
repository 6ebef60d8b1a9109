"""A sample state web portal that the sample processes automate (see ``robo.demo.portal``)."""
