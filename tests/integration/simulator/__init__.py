"""Integration tests of the Smartcar simulator, over real HTTP on 127.0.0.1."""
