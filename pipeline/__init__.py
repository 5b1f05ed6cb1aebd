"""Recurrent networks from first principles, and the experiment pipeline around them."""
from . import jitcache

jitcache.install()
