"""w365etl: batch provisioning of Dynamics 365 sales orders into billing contracts and subscriptions."""

__version__ = "0.1.0"
