"""What the ChatService needs besides the bus: the image intake (gateway.images) and the housekeeping path
(gateway.housekeeping), with the inference configuration they share; closed with the gateway."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from gateway.housekeeping import Housekeeping
from gateway.images import ImageIntake
from gateway.settings import GatewaySettings
from moe_core.bus import Bus
from moe_core.images import ImageStore
from moe_core.inference import InferenceClient, InferenceConfig
from moe_core.token_budget import TokenBudgets


@dataclass
class ChatExtras:
    images: ImageIntake
    housekeeping: Housekeeping
    inference: InferenceClient

    async def aclose(self) -> None:
        await self.images.aclose()
        await self.inference.aclose()


def chat_extras(settings: GatewaySettings, bus: Bus, redis: Redis) -> ChatExtras:
    config = InferenceConfig.from_settings(settings)  # INFERENCE_SERVERS: which models take images
    inference = InferenceClient(config, budgets=TokenBudgets(redis, settings.topic_namespace))  # the key's cap holds
    return ChatExtras(ImageIntake(settings, config, ImageStore(redis, settings.topic_namespace)),
                      Housekeeping(settings, inference, bus), inference)
