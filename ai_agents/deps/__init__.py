"""The project's own dependencies: the supply-chain gate and the installers (outside the sandbox)."""
