"""Developer tools: the demo data and its assets, the merchant simulator, the load generator
and the fake PayPal. Installed with DEBUG or DEVTOOLS=true, absent from production."""
