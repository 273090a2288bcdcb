import { CatalogModule } from '#vna/catalog';
import { type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';
import { AeController } from './ae.controller.js';
import { AeRegistryService } from './ae-registry.service.js';
import { JsonBodyMiddleware } from './json-body.middleware.js';

/** Administration API (always loaded): the registry of known AEs. Needs VNA_CONFIG. */
@Module({
  imports: [CatalogModule],
  controllers: [AeController],
  providers: [AeRegistryService],
  exports: [AeRegistryService],
})
export class AdminModule implements NestModule {
  configure(consumer: MiddlewareConsumer) {
    consumer.apply(JsonBodyMiddleware).forRoutes(AeController);
  }
}
