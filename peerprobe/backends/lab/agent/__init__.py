"""The lab's in-namespace agent: echo/nginx servers for every listener (server) and the batched probe client
(client). Import the submodules: the daemon must start without loading the client's imports."""
