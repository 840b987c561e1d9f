"""AWS as it behaves, on moto: the world a whole aws-backend run meets (world.py), the figures its delays come
from (figures.py), the stand-ins for what AWS and Kubernetes do beside their APIs, and the switchable
behaviours (behaviours.py)."""
