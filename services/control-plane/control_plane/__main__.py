from control_plane.settings import ControlPlaneSettings
from moe_core.runtime.service import run

if __name__ == "__main__":
    run("control_plane.app:create_app", ControlPlaneSettings())
